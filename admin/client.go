package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Call sends req to the admin socket at path and returns the answer. An
// error means no answer arrived; a refusal is an answer, with Error set.
func Call(path string, req Request) (Response, error) {
	var resp Response
	c, err := net.DialTimeout("unix", path, Timeout)
	if err != nil {
		return resp, fmt.Errorf("cannot reach vtepd: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * Timeout))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return resp, err
	}
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		if errors.Is(err, io.EOF) {
			return resp, errors.New("vtepd closed the connection without an answer")
		}
		return resp, err
	}
	return resp, nil
}
