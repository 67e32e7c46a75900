package protocols

import (
	"errors"
	"testing"
)

func TestEndingKeepsTheFirstCause(t *testing.T) {
	var e Ending
	if e.Err() != nil {
		t.Fatal("a new session has ended")
	}
	select {
	case <-e.Ended():
		t.Fatal("Ended is closed before End")
	default:
	}
	first := errors.New("first")
	if !e.End(first) || e.End(ErrDisconnected) {
		t.Fatal("End reports the wrong call as the one that ended the session")
	}
	<-e.Ended()
	if e.Err() != first {
		t.Fatalf("Err = %v, want the first cause", e.Err())
	}
}
