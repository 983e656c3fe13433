// Package admin owns the protocol of vtepd's admin socket: the commands,
// the JSON request and response (and the rows they carry: FDB entries,
// per-VNI and per-peer counters), the socket's default path, and Call,
// the client vtepctl uses.
//
// The protocol: a unix socket, mode 0600; one JSON Request per
// connection, answered by one JSON Response. The JSON field names are a
// contract with deployed vtepctl binaries and scripts (vtepctl -j prints
// the rows as they come): they do not change.
//
// It depends on the standard library only, so that vtepctl links none of
// the engine. It must not hold server logic: the engine (package vtep)
// listens on the socket and fills the responses.
package admin
