package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// notSettings are the fields tagged reload:"-", each with the reason: a
// field cannot take that class without being listed here.
var notSettings = map[string]string{
	"Config.configSource":   "bookkeeping: the file to read again on reload",
	"Config.AdminSocketSet": "only says whether admin.socket was written, which matters when the socket is opened at start",
}

// wholeValues are the struct types of this package found inside a
// setting, compared as a whole under that setting's key rather than
// field by field.
var wholeValues = map[reflect.Type]string{
	reflect.TypeFor[StaticEntry](): "network.static: an entry changes as a whole",
	reflect.TypeFor[Neighbor]():    "control.neighbor: restart-only, as a whole",
}

// Every field of Config and Network has a reload class that the engine
// knows, and a key; a struct nested in a setting is classified too.
func TestReloadClasses(t *testing.T) {
	cfgFields, err := fields(reflect.TypeFor[Config](), ReloadLive, ReloadRestart, ReloadNetworks, ReloadNone)
	if err != nil {
		t.Fatal(err)
	}
	netFields, err := fields(reflect.TypeFor[Network](), ReloadLive, ReloadReplace, ReloadNone)
	if err != nil {
		t.Fatal(err)
	}
	none := map[string]bool{}
	check := func(typ reflect.Type, fs []field) {
		for _, f := range fs {
			name := typ.Name() + "." + f.name
			if f.class == ReloadNone {
				none[name] = true
				if _, ok := notSettings[name]; !ok {
					t.Errorf("%s is tagged reload:\"-\" but not listed in notSettings: is it really not a setting?", name)
				}
			}
			ft := typ.Field(f.index).Type
			if f.class == ReloadNetworks {
				if name != "Config.Networks" || ft != reflect.TypeFor[[]Network]() {
					t.Errorf("%s (%s): only Config.Networks, a []Network, is compared network by network", name, ft)
				}
				continue
			}
			for _, st := range nestedStructs(ft) {
				if _, ok := wholeValues[st]; !ok {
					t.Errorf("%s holds the struct %s, neither classified field by field nor listed in wholeValues", name, st)
				}
			}
		}
	}
	check(reflect.TypeFor[Config](), cfgFields)
	check(reflect.TypeFor[Network](), netFields)
	for name := range notSettings {
		if !none[name] {
			t.Errorf("notSettings lists %s, which is not a field tagged reload:\"-\"", name)
		}
	}
}

// nestedStructs finds the struct types of this package that values of t
// hold, through slices, arrays, pointers and maps.
func nestedStructs(t reflect.Type) []reflect.Type {
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Pointer:
		return nestedStructs(t.Elem())
	case reflect.Map:
		return append(nestedStructs(t.Key()), nestedStructs(t.Elem())...)
	case reflect.Struct:
		if t.PkgPath() == reflect.TypeFor[Config]().PkgPath() {
			return []reflect.Type{t}
		}
	}
	return nil
}

// The key tags name the file's real TOML keys, and every key of the file
// is named by a field, so that a new key has a field with a class.
func TestReloadKeys(t *testing.T) {
	for _, tt := range []struct {
		typ  reflect.Type
		file reflect.Type
	}{
		{reflect.TypeFor[Config](), reflect.TypeFor[fileConfig]()},
		{reflect.TypeFor[Network](), reflect.TypeFor[fileNetwork]()},
	} {
		tables, leaves := tomlKeys(tt.file, "")
		var named []string
		for i := range tt.typ.NumField() {
			sf := tt.typ.Field(i)
			key := sf.Tag.Get("key")
			if key == "" {
				continue
			}
			named = append(named, key)
			if !slices.Contains(leaves, key) && !slices.Contains(tables, key) {
				t.Errorf("%s.%s: key %q is not a key of the file (%s)", tt.typ.Name(), sf.Name, key, tt.file.Name())
			}
		}
		for _, leaf := range leaves {
			if !slices.ContainsFunc(named, func(k string) bool { return leaf == k || strings.HasPrefix(leaf, k+".") }) {
				t.Errorf("the file's key %q is named by no field of %s: add the field's key tag", leaf, tt.typ.Name())
			}
		}
	}
}

// tomlKeys lists the dotted TOML keys of a file struct: tables (and
// arrays of tables), and leaves. Arrays of tables of another file struct
// (fileNetwork in fileConfig) are tables, not walked: they have their own
// check.
func tomlKeys(t reflect.Type, prefix string) (tables, leaves []string) {
	for i := range t.NumField() {
		sf := t.Field(i)
		key := prefix + sf.Tag.Get("toml")
		ft := sf.Type
		switch {
		case ft.Kind() == reflect.Struct:
			tables = append(tables, key)
			tb, lv := tomlKeys(ft, key+".")
			tables, leaves = append(tables, tb...), append(leaves, lv...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			tables = append(tables, key)
			if ft.Elem() != reflect.TypeFor[fileNetwork]() {
				tb, lv := tomlKeys(ft.Elem(), key+".")
				tables, leaves = append(tables, tb...), append(leaves, lv...)
			}
		default:
			leaves = append(leaves, key)
		}
	}
	return tables, leaves
}
