package config

// Design notes on reload classes.
//
// A reload once forgot keys: the engine compared the settings it knew of
// one by one, and a kept network whose only change was accept_from,
// flood_rate or inner_vlan was reported unchanged and kept running with
// the old values. So every field of Config and Network now says, in a
// struct tag, how a running vtepd takes a change of it, and Diff and
// DiffNetwork walk the fields by reflection: a new field is compared
// without anyone having to remember to, and a test refuses a field
// without a class (reload_test.go).

import (
	"fmt"
	"reflect"
	"slices"
)

// Reload classes, the values of the reload tag.
const (
	// ReloadLive: a reload applies a change to the running engine.
	ReloadLive = "live"
	// ReloadRestart: only a restart can apply a change; a reload that
	// makes one is refused as a whole.
	ReloadRestart = "restart"
	// ReloadReplace (Network only): the setting is part of the network's
	// identity; a reload that changes it replaces the network.
	ReloadReplace = "replace"
	// ReloadNetworks (Config.Networks only): the networks, matched by VNI
	// and compared one by one with DiffNetwork.
	ReloadNetworks = "networks"
	// ReloadNone: not a setting (bookkeeping); never compared.
	ReloadNone = "-"
)

// field is one tagged field of Config or Network.
type field struct {
	name  string // Go name, for messages about the tags themselves
	index int
	class string
	key   string
}

var (
	configFields  = mustFields(reflect.TypeFor[Config](), ReloadLive, ReloadRestart, ReloadNetworks, ReloadNone)
	networkFields = mustFields(reflect.TypeFor[Network](), ReloadLive, ReloadReplace, ReloadNone)
)

// fields reads the reload and key tags of struct type t, and checks that
// every field has one of the classes allowed and, unless it is not a
// setting, a key.
func fields(t reflect.Type, allowed ...string) ([]field, error) {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		class, ok := sf.Tag.Lookup("reload")
		if !ok {
			return nil, fmt.Errorf("%s.%s has no reload tag", t.Name(), sf.Name)
		}
		if !slices.Contains(allowed, class) {
			return nil, fmt.Errorf("%s.%s: reload class %q is not one of %q", t.Name(), sf.Name, class, allowed)
		}
		key := sf.Tag.Get("key")
		if key == "" && class != ReloadNone {
			return nil, fmt.Errorf("%s.%s has no key tag", t.Name(), sf.Name)
		}
		fs = append(fs, field{name: sf.Name, index: i, class: class, key: key})
	}
	return fs, nil
}

func mustFields(t reflect.Type, allowed ...string) []field {
	fs, err := fields(t, allowed...)
	if err != nil {
		panic("config: " + err.Error())
	}
	return fs
}

// Diff compares the top-level settings of two configurations, the
// networks aside (see DiffNetwork). It returns the keys of the settings
// that differ, by class: restart, those that only a restart can change,
// and live, those a reload applies. Each key is named once, in the order
// of the fields.
func Diff(old, new *Config) (restart, live []string) {
	o, n := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	for _, f := range configFields {
		if f.class != ReloadRestart && f.class != ReloadLive || equal(o.Field(f.index), n.Field(f.index)) {
			continue
		}
		switch f.class {
		case ReloadRestart:
			restart = appendKey(restart, f.key)
		case ReloadLive:
			live = appendKey(live, f.key)
		}
	}
	return restart, live
}

// DiffNetwork compares two configurations of a network. replace says that
// a setting of the network's identity differs (its VNI, bridge, TAP,
// group or ttl), so that the running network must be replaced by a new
// one; live lists the keys of the other settings that differ, which a
// reload applies to the running network. Each key is named once, in the
// order of the fields.
func DiffNetwork(old, new *Network) (replace bool, live []string) {
	o, n := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	for _, f := range networkFields {
		if f.class == ReloadNone || equal(o.Field(f.index), n.Field(f.index)) {
			continue
		}
		switch f.class {
		case ReloadReplace:
			replace = true
		case ReloadLive:
			live = appendKey(live, f.key)
		}
	}
	return replace, live
}

// equal compares two settings. Two empty lists are equal, nil or not:
// "no peers" is one setting however it was built.
func equal(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func appendKey(keys []string, key string) []string {
	if slices.Contains(keys, key) {
		return keys
	}
	return append(keys, key)
}
