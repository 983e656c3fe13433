package admin

import (
	"encoding/json"
	"io"
	"net"
	"time"
)

// ServeConn answers one connection, the server's side of Call: it reads
// one Request (at most MaxRequest bytes, within Timeout), writes what
// handle answers, or an Error for a request it cannot read, and closes c.
func ServeConn(c net.Conn, handle func(Request) Response) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(Timeout))
	var req Request
	var resp Response
	if err := json.NewDecoder(io.LimitReader(c, MaxRequest)).Decode(&req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else {
		resp = handle(req)
	}
	json.NewEncoder(c).Encode(resp)
}
