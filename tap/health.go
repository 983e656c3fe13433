package tap

import "strconv"

// Health is what Device.Check found of a TAP and its bridge.
type Health int

const (
	// Healthy: the TAP exists and is a port of its bridge.
	Healthy Health = iota
	// Reattached: the TAP had been taken off its bridge; it is a port of
	// it again.
	Reattached
	// Detached: the TAP is off its bridge and could not be put back.
	Detached
	// Deleted: the TAP is gone; it must be created anew.
	Deleted
	// BridgeGone: the bridge is gone; nothing to do but wait for it.
	BridgeGone
)

func (h Health) String() string {
	switch h {
	case Healthy:
		return "healthy"
	case Reattached:
		return "reattached"
	case Detached:
		return "detached"
	case Deleted:
		return "deleted"
	case BridgeGone:
		return "bridge gone"
	}
	return "Health(" + strconv.Itoa(int(h)) + ")"
}
