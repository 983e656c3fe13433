package tap

// Config says which TAP to create and where to attach it.
type Config struct {
	Name   string // interface name, at most 15 characters
	Bridge string // existing Linux bridge to enslave the TAP to
	MTU    int    // TAP MTU: the underlay MTU minus the encapsulation overhead
	Queues int    // descriptors to open (IFF_MULTI_QUEUE when more than one)
}

// DefaultBatchSize is how many frames one Read may return.
const DefaultBatchSize = 64
