package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// f29 is the corpus's largest index of Fedora 29's modules (455 KB, 55
// documents), as in ../shared/corpus/modulemd/testdata/f29.yaml.
const f29 = corpusDir + "/testdata/f29.yaml"

// BenchmarkValidateF29_VsModulemdValidator runs `rida validate f29.yaml`
// (a rida binary built for the benchmark) and `modulemd-validator
// f29.yaml` alternately, as processes, in one run, and reports each one's
// median wall time and their ratio (rida / modulemd-validator; below 1:
// rida is faster). It also reports rida's in-process time (validateData,
// no process start).
func BenchmarkValidateF29_VsModulemdValidator(b *testing.B) {
	validator, err := exec.LookPath("modulemd-validator")
	if err != nil {
		b.Fatalf("modulemd-validator not found (%v): run scripts/install-deps", err)
	}
	rida := filepath.Join(b.TempDir(), "rida")
	if out, err := exec.Command("go", "build", "-o", rida, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	data, err := os.ReadFile(f29)
	if err != nil {
		b.Fatal(err)
	}
	run := func(bin string) time.Duration {
		cmd := exec.Command(bin, "validate", f29)
		if bin == validator {
			cmd = exec.Command(bin, f29)
		}
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		return time.Since(start)
	}
	run(rida) // warm the page cache for both
	run(validator)
	var ridaTimes, validatorTimes []time.Duration
	round := func(i int) {
		// Alternate which goes first, so neither always runs on a warmer machine.
		if i%2 == 0 {
			ridaTimes = append(ridaTimes, run(rida))
			validatorTimes = append(validatorTimes, run(validator))
		} else {
			validatorTimes = append(validatorTimes, run(validator))
			ridaTimes = append(ridaTimes, run(rida))
		}
	}
	i := 0
	for b.Loop() {
		round(i)
		i++
	}
	for ; i < 31; i++ { // enough rounds for a median whatever b.N was
		round(i)
	}
	var inProcess []time.Duration
	for range 31 {
		start := time.Now()
		if res := validateData("f29.yaml", data); !res.Valid {
			b.Fatalf("f29.yaml invalid: %v", res.Problems)
		}
		inProcess = append(inProcess, time.Since(start))
	}
	r, v, ip := median(ridaTimes), median(validatorTimes), median(inProcess)
	b.ReportMetric(float64(r.Microseconds())/1000, "rida-ms")
	b.ReportMetric(float64(v.Microseconds())/1000, "validator-ms")
	b.ReportMetric(float64(r)/float64(v), "rida/validator")
	b.ReportMetric(float64(ip.Microseconds())/1000, "rida-inproc-ms")
	b.Logf("%d rounds: median rida validate %v, modulemd-validator %v, ratio %.2f; rida in-process %v", len(ridaTimes), r, v, float64(r)/float64(v), ip)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
