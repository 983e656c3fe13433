package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNoData is wrapped by parsers whose input holds no usable sample.
var ErrNoData = errors.New("no data")

// Iperf is what an iperf3 client run carried.
type Iperf struct {
	BitsPerSecond float64 // received, all streams
	Bytes         int64   // received, all streams
	Retransmits   int64   // sender side, TCP only
}

// iperfJSON mirrors the parts of iperf3's -J output that we read.
type iperfJSON struct {
	Error string `json:"error"`
	End   struct {
		SumSent struct {
			Retransmits int64 `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes         int64   `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
}

// ParseIperf reads an iperf3 -J report. out may carry other text (stderr
// warnings) before the JSON object, which starts at the first line that
// begins with "{". A report with an "error" member, or one that received
// nothing, is an error.
func ParseIperf(out []byte) (Iperf, error) {
	start := -1
	if bytes.HasPrefix(out, []byte("{")) {
		start = 0
	} else if i := bytes.Index(out, []byte("\n{")); i >= 0 {
		start = i + 1
	}
	if start < 0 {
		return Iperf{}, fmt.Errorf("iperf3: no JSON report in output: %w: %s", ErrNoData, Tail(out, 300))
	}
	var j iperfJSON
	if err := json.NewDecoder(bytes.NewReader(out[start:])).Decode(&j); err != nil {
		return Iperf{}, fmt.Errorf("iperf3: decoding JSON report: %w", err)
	}
	if j.Error != "" {
		return Iperf{}, fmt.Errorf("iperf3: %s", j.Error)
	}
	r := Iperf{
		BitsPerSecond: j.End.SumReceived.BitsPerSecond,
		Bytes:         j.End.SumReceived.Bytes,
		Retransmits:   j.End.SumSent.Retransmits,
	}
	if r.Bytes <= 0 || !(r.BitsPerSecond > 0) {
		return Iperf{}, fmt.Errorf("iperf3: %w: received %d bytes at %g bit/s", ErrNoData, r.Bytes, r.BitsPerSecond)
	}
	return r, nil
}
