package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Tail is the last n bytes of a command's output, trimmed, for an error
// message.
func Tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return "..." + string(b[len(b)-n:])
	}
	return string(b)
}

// LastJSONLine decodes the last line of out that starts with "{" into v:
// the hidden subcommands print their result that way, after any chatter
// (ReadyLine first of all). Output without such a line wraps ErrNoData.
func LastJSONLine(out []byte, v any) error {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if bytes.HasPrefix(lines[i], []byte("{")) {
			return json.Unmarshal(lines[i], v)
		}
	}
	return fmt.Errorf("%w: no JSON result line in output: %s", ErrNoData, Tail(out, 300))
}
