package config

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// keyLocations maps a key path with array indices, as validation errors
// name them ("network[1].static[0].mac"), to its line in the file.
//
// BurntSushi/toml reports positions for syntax errors but not for keys that
// decode fine and then fail validation, so we find them with a small scan of
// our own. It only has to understand the shapes our schema uses: tables,
// arrays of tables, and "key = value" lines.
type keyLocations map[string]int

var (
	tomlArrayHeader = regexp.MustCompile(`^\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]`)
	tomlTableHeader = regexp.MustCompile(`^\[\s*([A-Za-z0-9_.-]+)\s*\]`)
	tomlKeyLine     = regexp.MustCompile(`^"?([A-Za-z0-9_-]+)"?\s*=`)
	tomlIndex       = regexp.MustCompile(`\[\d+\]`)
)

func locateKeys(data []byte) keyLocations {
	loc := keyLocations{}
	counts := map[string]int{} // array-of-tables path -> entries seen
	prefix := ""               // current table, with indices
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if m := tomlArrayHeader.FindStringSubmatch(s); m != nil {
			parent := ""
			name := m[1]
			// [[network.static]] belongs to the latest [[network]].
			if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
				parent = indexed(counts, name[:dot])
				name = name[dot+1:]
				if parent != "" {
					parent += "."
				}
			}
			arr := parent + name
			prefix = fmt.Sprintf("%s[%d]", arr, counts[arr])
			counts[arr]++
			loc.add(prefix, line)
			continue
		}
		if m := tomlTableHeader.FindStringSubmatch(s); m != nil {
			prefix = m[1]
			loc.add(prefix, line)
			continue
		}
		if m := tomlKeyLine.FindStringSubmatch(s); m != nil {
			key := m[1]
			if prefix != "" {
				key = prefix + "." + key
			}
			loc.add(key, line)
		}
	}
	return loc
}

// indexed names the latest entry of a dotted array-of-tables path, e.g.
// "network" -> "network[2]" after three [[network]] headers.
func indexed(counts map[string]int, path string) string {
	if n := counts[path]; n > 0 {
		return fmt.Sprintf("%s[%d]", path, n-1)
	}
	return path
}

func (l keyLocations) add(key string, line int) {
	if _, ok := l[key]; !ok {
		l[key] = line
	}
}

// line finds key, or failing that its nearest enclosing key: the line of
// "peers" for "peers[3]", the [[network]] header for a missing "vni".
func (l keyLocations) line(key string) int {
	for key != "" {
		if n, ok := l[key]; ok {
			return n
		}
		cut := strings.LastIndexAny(key, ".[")
		if cut < 0 {
			return 0
		}
		key = key[:cut]
	}
	return 0
}

// firstLine finds a key path given without indices, as the TOML decoder
// reports unknown keys ("network.static.macc").
func (l keyLocations) firstLine(key string) int {
	best := 0
	for k, n := range l {
		if tomlIndex.ReplaceAllString(k, "") == key && (best == 0 || n < best) {
			best = n
		}
	}
	return best
}
