package tap

// Config says which TAP to create and where to attach it.
type Config struct {
	Name   string // interface name, at most 15 characters
	Bridge string // existing Linux bridge to enslave the TAP to
	MTU    int    // TAP MTU: the underlay MTU minus the encapsulation overhead
	Queues int    // descriptors to open (IFF_MULTI_QUEUE when more than one)
	// Offload opens the TAP with IFF_VNET_HDR and asks for checksum and
	// TCP segmentation offloads (TUNSETOFFLOAD): every frame read or
	// written is preceded by a virtio_net_hdr (offload.VirtioNetHdrLen
	// bytes), and frames read may be TCP super-frames of up to 64 KiB
	// with their checksums left partial.
	Offload bool
	// NoUSO leaves out UDP segmentation (TUN_F_USO4/6), which Offload
	// asks for where the kernel has it: what a kernel before 6.2 gives.
	NoUSO bool
}

// DefaultBatchSize is how many frames one Read may return.
const DefaultBatchSize = 64
