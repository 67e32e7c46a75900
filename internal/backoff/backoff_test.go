package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelayDoublesUpToMax(t *testing.T) {
	ctx := context.Background()
	d := Delay{Next: time.Microsecond, Max: 5 * time.Microsecond}
	var got []time.Duration
	for range 4 {
		got = append(got, d.Next)
		if !d.Wait(ctx) {
			t.Fatal("Wait returned false with a live context")
		}
	}
	want := []time.Duration{time.Microsecond, 2 * time.Microsecond, 4 * time.Microsecond, 5 * time.Microsecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep on an ended context returned true")
	}
}
