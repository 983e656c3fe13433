package vtep

import "github.com/vtepd/vtepd/config"

// NetworkConfig is the old name of config.Network, kept for the tests
// not yet renamed (train_test.go, left alone while package underlay is
// split off). Delete it with the last use.
type NetworkConfig = config.Network
