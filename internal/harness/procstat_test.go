package harness

import "testing"

func TestParseProcStat(t *testing.T) {
	data := `cpu  10132153 290696 3084719 46828483 16683 0 25195 7 175628 0
cpu0 1393280 32966 572056 13366730 5765 0 14394 0 0 0
intr 1462898 0 0
ctxt 4321
`
	got, err := ParseProcStat([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := CPUTimes{
		Busy:  10132153 + 290696 + 3084719 + 0 + 25195 + 7, // guest (175628) is inside user
		Idle:  46828483 + 16683,
		Total: 10132153 + 290696 + 3084719 + 25195 + 7 + 46828483 + 16683,
	}
	if got != want {
		t.Errorf("ParseProcStat = %+v, want %+v", got, want)
	}
	for name, bad := range map[string]string{
		"no cpu line": "cpu0 1 2 3 4 5 6 7 8\nintr 0\n",
		"short line":  "cpu 1 2 3 4\n",
		"not number":  "cpu 1 2 x 4 5 6 7 8 9 10\n",
	} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("%s: ParseProcStat succeeded", name)
		}
	}
}

func TestBusyPercent(t *testing.T) {
	a, _ := ParseProcStat([]byte("cpu  100 0 100 700 100 0 0 0 0 0\n"))
	b, _ := ParseProcStat([]byte("cpu  150 0 150 800 100 0 0 0 0 0\n"))
	if p := BusyPercent(a, b); p != 50 {
		t.Errorf("busy %v%%, want 50", p)
	}
	if p := BusyPercent(b, a); p != 0 {
		t.Errorf("backwards: %v%%", p)
	}
}
