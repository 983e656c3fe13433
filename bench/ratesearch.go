package main

// The offered-rate search of the small-frame workload (issue #12), after
// FD.io CSIT's MLRsearch for VPP: an ordinary UDP socket sender, paced,
// in one container and an ordinary recvmmsg receiver in the other; the
// rate bisected with short trials and the result confirmed by a trial of
// full length. What it reports, for each data path and flow count:
//
//	NDR  the highest offered rate delivered without loss;
//	PDR  the highest offered rate delivered with at most 0.5% loss;
//	the overload curve, delivered against offered up to the sender's
//	     maximum, and its retention: delivered at the maximum ÷ the most
//	     ever delivered. A path in receive livelock delivers less the
//	     harder it is pushed, which a single figure at the maximum hides.
//
// Design notes. The search is pure logic over a measure function, so that
// the tests can run it against a synthetic path; the trials themselves
// (ratesearch_linux.go) run a sender process per trial and one receiver
// per data path (udprate_linux.go), and tag every datagram with its
// trial, so that a late datagram of one trial never counts for the next.
//
// The order: the unpaced sender (its offered rate is the sender's maximum,
// and what it delivered is where the search for a rate that meets a goal
// starts, as in MLRsearch), a sweep at fixed fractions of that maximum
// (points of the curve, and first bounds for the bisection), the
// bisection of NDR and then PDR with short trials, each trial counting
// for both goals, the confirmation of each at full length, and the
// maximum again at full length, for the retention.
//
// One search costs, with the defaults (1 s searching, 5 s confirming,
// precision 5%): the unpaced trial, four sweep points, two to eight
// bisection steps, and two or three full-length trials when the
// confirmations hold -- about 25 s. A confirmation that fails steps down
// (10%, then 20%) and bisects back, up to three full-length trials a
// goal. MLRsearch proper grows the trial length over several phases and
// narrows to 0.5%; on a 2-vCPU VM whose own figures move by 10% from run
// to run, one short phase and one confirmation buy most of what is to be
// had for a minute of the run.

import (
	"fmt"
	"math"
	"time"
)

// trialSpec is what the search asks of one trial.
type trialSpec struct {
	TargetKpps float64 // offered rate asked of the sender; 0: as fast as it can
	Duration   time.Duration
	Purpose    string // for the progress line and the JSON: "max", "sweep", "ndr", ...
	Final      bool   // a full-length trial
}

// trial is one measurement: the sender paced at TargetKpps for Seconds,
// and what the receiver counted.
type trial struct {
	ID            int     `json:"id"`
	Purpose       string  `json:"purpose"`
	Final         bool    `json:"final,omitempty"`
	TargetKpps    float64 `json:"target_kpps"` // 0: unpaced
	OfferedKpps   float64 `json:"offered_kpps"`
	DeliveredKpps float64 `json:"delivered_kpps"`
	Loss          float64 `json:"loss"` // (sent - received) / sent
	Sent          uint64  `json:"sent"`
	Received      uint64  `json:"received"`
	Seconds       float64 `json:"seconds"`
	// ReceiverDrops are the receiving host's UDP receive-buffer errors
	// during the trial (RcvbufErrors): datagrams the path delivered but
	// the receiving application did not read in time.
	ReceiverDrops uint64 `json:"receiver_socket_drops,omitempty"`
	SendErrors    uint64 `json:"send_errors,omitempty"`   // sendmmsg calls that failed transiently
	PacerSkipped  uint64 `json:"pacer_skipped,omitempty"` // datagrams the sender fell behind by and gave up
	// Drops are, for full-length trials, the lab's drop counters that grew
	// during the trial: where the lost datagrams went ("b: udp
	// rcvbuf_errors" for host b's UDP sockets, "a: vtep0 tx_dropped" for
	// an interface; see runner.dropCounters).
	Drops map[string]uint64 `json:"drops,omitempty"`
}

// newTrial fills in the rates and the loss from the counts.
func newTrial(sent, received uint64, seconds float64) trial {
	t := trial{Sent: sent, Received: received, Seconds: seconds}
	if seconds > 0 {
		t.OfferedKpps = float64(sent) / seconds / 1e3
		t.DeliveredKpps = float64(received) / seconds / 1e3
	}
	if sent > 0 {
		t.Loss = float64(t.lost()) / float64(sent)
	}
	return t
}

func (t trial) lost() uint64 {
	if t.Received >= t.Sent {
		return 0
	}
	return t.Sent - t.Received
}

// rate is the offered rate the trial stands for in the search: what was
// asked, or what the sender managed if that was less (an unpaced trial's
// is what it managed).
func (t trial) rate() float64 {
	if t.TargetKpps > 0 && t.TargetKpps < t.OfferedKpps {
		return t.TargetKpps
	}
	return t.OfferedKpps
}

// meets says whether the trial lost at most goal of what it sent; goal 0
// means nothing at all.
func (t trial) meets(goal float64) bool {
	return t.Sent > 0 && float64(t.lost()) <= goal*float64(t.Sent)
}

// searchConfig are the search's parameters (flags -search-*).
type searchConfig struct {
	Short     time.Duration // trial length while searching
	Final     time.Duration // trial length to confirm, and of the maximum
	Precision float64       // the bisection stops when (upper-lower)/upper is at most this
	PDRLoss   float64       // the loss ratio PDR allows
	Sweep     []float64     // fractions of the sender's maximum measured for the curve
	MinKpps   float64       // the lowest rate tried
	MaxShort  int           // bisection trials per loss goal, at most
	MaxFinal  int           // full-length trials per loss goal, at most
}

// defaultSearch is what `make bench` runs.
func defaultSearch(short, final time.Duration) searchConfig {
	return searchConfig{Short: short, Final: final, Precision: 0.05, PDRLoss: 0.005,
		Sweep: []float64{0.2, 0.4, 0.6, 0.8}, MinKpps: 1, MaxShort: 10, MaxFinal: 3}
}

// rateBound is the result for one loss goal.
type rateBound struct {
	LossGoal float64 `json:"loss_goal"`
	// Kpps is the highest rate that met the goal in a full-length trial
	// (Confirmed); 0 if none did (see UpperKpps).
	Kpps      float64 `json:"kpps"`
	Confirmed bool    `json:"confirmed"`
	// SearchKpps is what the short trials found: the rate the
	// confirmation started from. 0 if not even MinKpps met the goal.
	SearchKpps float64 `json:"search_kpps"`
	// UpperKpps is the lowest rate above Kpps that missed the goal, in a
	// trial of either length; 0 if none did. Unconfirmed, it is the
	// lowest full-length trial's that missed: the rate is below it.
	UpperKpps float64 `json:"upper_kpps,omitempty"`
	// SenderLimited: the goal was met at the sender's maximum, so the path
	// may carry more than Kpps.
	SenderLimited bool `json:"sender_limited,omitempty"`
}

// rateRun is one search: one data path, one flow count.
type rateRun struct {
	Mode          string    `json:"mode"`
	Flows         int       `json:"flows"`
	SenderMaxKpps float64   `json:"sender_max_kpps"` // the unpaced short trial's offered rate
	NDR           rateBound `json:"ndr"`
	PDR           rateBound `json:"pdr"`
	// The full-length unpaced trial, and the most delivered in any trial.
	MaxOfferedKpps    float64 `json:"max_offered_kpps"`
	MaxDeliveredKpps  float64 `json:"max_delivered_kpps"`
	PeakDeliveredKpps float64 `json:"peak_delivered_kpps"`
	// Retention is MaxDeliveredKpps / PeakDeliveredKpps: 1 for a path that
	// keeps its best rate under any overload, small for one in livelock.
	Retention float64 `json:"overload_retention"`
	Trials    []trial `json:"trials"`
}

// searcher runs one search.
type searcher struct {
	cfg     searchConfig
	measure func(trialSpec) (trial, error)
	run     *rateRun
}

// runSearch measures the sender's maximum, the sweep, searches NDR and
// PDR with short trials, confirms each with full-length ones, and
// measures the maximum at full length for the retention. measure runs one
// trial; it is called one trial at a time.
func runSearch(cfg searchConfig, measure func(trialSpec) (trial, error)) (*rateRun, error) {
	s := &searcher{cfg: cfg, measure: measure, run: &rateRun{}}
	maxShort, err := s.do(0, false, "max")
	if err != nil {
		return s.run, err
	}
	if maxShort.OfferedKpps <= 0 {
		return s.run, fmt.Errorf("the unpaced sender sent nothing")
	}
	s.run.SenderMaxKpps = maxShort.OfferedKpps
	for _, f := range cfg.Sweep {
		if _, err := s.do(f*maxShort.OfferedKpps, false, "sweep"); err != nil {
			return s.run, err
		}
	}
	goals := []struct {
		name string
		loss float64
		out  *rateBound
	}{{"ndr", 0, &s.run.NDR}, {"pdr", cfg.PDRLoss, &s.run.PDR}}
	found := make([]float64, len(goals))
	for i, g := range goals {
		if found[i], err = s.bisect(g.name, g.loss, maxShort.DeliveredKpps); err != nil {
			return s.run, err
		}
	}
	for i, g := range goals {
		if err := s.confirm(g.name, g.loss, found[i]); err != nil {
			return s.run, err
		}
	}
	maxFinal, err := s.final(0, "max")
	if err != nil {
		return s.run, err
	}
	// Every goal's full-length trials count for each: one that met NDR's
	// goal meets PDR's too, one that missed PDR's missed NDR's.
	for i, g := range goals {
		*g.out = s.bound(g.loss, found[i])
	}
	s.run.MaxOfferedKpps, s.run.MaxDeliveredKpps = maxFinal.OfferedKpps, maxFinal.DeliveredKpps
	s.run.PeakDeliveredKpps, s.run.Retention = retention(s.run.Trials, maxFinal)
	return s.run, nil
}

// do runs one trial and records it.
func (s *searcher) do(target float64, final bool, purpose string) (trial, error) {
	d := s.cfg.Short
	if final {
		d = s.cfg.Final
	}
	t, err := s.measure(trialSpec{TargetKpps: target, Duration: d, Purpose: purpose, Final: final})
	if err != nil {
		return t, fmt.Errorf("%s trial at %s: %w", purpose, kppsText(target), err)
	}
	t.Purpose, t.Final, t.TargetKpps = purpose, final, target
	s.run.Trials = append(s.run.Trials, t)
	return t, nil
}

// final returns the full-length trial at target, running it unless one
// ran already (NDR and PDR often converge on the same rate).
func (s *searcher) final(target float64, purpose string) (trial, error) {
	for _, t := range s.run.Trials {
		if t.Final && t.TargetKpps == target {
			return t, nil
		}
	}
	return s.do(target, true, purpose)
}

// bounds are, over the trials of one length, the lowest rate that missed
// goal (+Inf if none did) and the highest rate below it that met it (0 if
// none did). A rate that met the goal above one that missed it is noise
// and does not count.
func (s *searcher) bounds(goal float64, final bool) (lower, upper float64) {
	upper = math.Inf(1)
	for _, t := range s.run.Trials {
		if t.Final == final && !t.meets(goal) {
			upper = min(upper, t.rate())
		}
	}
	for _, t := range s.run.Trials {
		if t.Final == final && t.meets(goal) && t.rate() < upper {
			lower = max(lower, t.rate())
		}
	}
	return lower, upper
}

// bisect narrows the interval of goal with short trials until it is
// within the precision, and returns its lower end: the rate to confirm. 0
// means the sender's maximum met the goal (confirm unpaced); a negative
// result, that not even MinKpps did. seed is the rate delivered at the
// maximum, where the search for a first rate that meets the goal starts,
// as MLRsearch starts from the forwarding rate at the maximum.
func (s *searcher) bisect(name string, goal, seed float64) (float64, error) {
	step := 0.0 // the last downward step from the upper bound, relative
	for n := 0; ; n++ {
		lower, upper := s.bounds(goal, false)
		switch {
		case math.IsInf(upper, 1):
			return 0, nil
		case lower > 0 && (upper-lower <= s.cfg.Precision*upper || n >= s.cfg.MaxShort):
			return lower, nil
		case lower == 0 && (upper <= s.cfg.MinKpps || n >= s.cfg.MaxShort):
			return -1, nil
		}
		next := (lower + upper) / 2
		if lower == 0 {
			// Below every rate tried: step down from the upper bound,
			// twice as far each time.
			if step == 0 && seed > 0 {
				next = min(seed*(1-goal), upper*(1-s.cfg.Precision))
			} else {
				next = upper * (1 - min(max(2*step, s.cfg.Precision), 0.5))
			}
			next = max(next, s.cfg.MinKpps)
			step = 1 - next/upper
		}
		if _, err := s.do(next, false, name); err != nil {
			return 0, err
		}
	}
}

// confirm runs full-length trials, first at rate (what bisect found;
// 0: unpaced; none if negative), and while they miss goal, lower: each
// step down twice the last (10%, 20%, 40% with the default precision),
// then halfway back once a rate met the goal, for at most MaxFinal
// trials. The full-length trials of every goal count.
func (s *searcher) confirm(name string, goal, rate float64) error {
	if rate < 0 {
		return nil // nothing met the goal even in a short trial
	}
	purpose := "confirm " + name
	if rate == 0 {
		purpose = "max" // the unpaced sender met the goal
	}
	step := 2 * s.cfg.Precision
	for k := 0; k < s.cfg.MaxFinal; k, purpose = k+1, "confirm "+name {
		t, err := s.final(rate, purpose)
		if err != nil {
			return err
		}
		lower, upper := s.bounds(goal, true)
		if lower > 0 && (math.IsInf(upper, 1) || upper-lower <= s.cfg.Precision*upper) {
			return nil
		}
		if lower > 0 {
			rate = (lower + upper) / 2
		} else {
			rate = min(upper, t.rate()) * (1 - step)
			step = min(2*step, 0.5)
		}
	}
	return nil
}

// bound is the result for goal from every trial so far, search being
// what bisect found. A goal no full-length trial met is not confirmed and
// has no rate, only the lowest rate known to miss it: a short trial's
// figure that longer ones contradict is no figure to compare with.
func (s *searcher) bound(goal, search float64) rateBound {
	b := rateBound{LossGoal: goal, SearchKpps: max(search, 0)}
	if search == 0 {
		b.SearchKpps = s.run.SenderMaxKpps
	}
	if search < 0 {
		_, b.UpperKpps = s.bounds(goal, false)
		return b
	}
	lower, upper := s.bounds(goal, true)
	if lower == 0 {
		b.UpperKpps = upper
		return b
	}
	b.Kpps, b.Confirmed = lower, true
	b.SenderLimited = math.IsInf(upper, 1) && s.unpacedMet(goal)
	for _, t := range s.run.Trials {
		if !t.meets(goal) && t.rate() > b.Kpps && (b.UpperKpps == 0 || t.rate() < b.UpperKpps) {
			b.UpperKpps = t.rate()
		}
	}
	return b
}

// unpacedMet says whether the unpaced sender met goal in every trial of
// either length that it ran.
func (s *searcher) unpacedMet(goal float64) bool {
	ran := false
	for _, t := range s.run.Trials {
		if t.TargetKpps == 0 {
			if !t.meets(goal) {
				return false
			}
			ran = true
		}
	}
	return ran
}

// retention returns the most delivered in any of trials, and the share of
// it that max (the unpaced full-length trial) delivered.
func retention(trials []trial, max trial) (peak, ratio float64) {
	peak = max.DeliveredKpps
	for _, t := range trials {
		peak = math.Max(peak, t.DeliveredKpps)
	}
	if peak <= 0 {
		return 0, 0
	}
	return peak, max.DeliveredKpps / peak
}

// dropDelta is what grew from before to after, by counter.
func dropDelta(before, after map[string]uint64) map[string]uint64 {
	var out map[string]uint64
	for k, v := range after {
		if b, ok := before[k]; ok && v > b {
			if out == nil {
				out = map[string]uint64{}
			}
			out[k] = v - b
		}
	}
	return out
}

// kppsText prints a target rate for progress lines and errors.
func kppsText(kpps float64) string {
	if kpps <= 0 {
		return "max"
	}
	return fmt.Sprintf("%.1f kpps", kpps)
}
