package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// rime up deploys the available and encrypted stacks of teamchat (over
// the hub's relay) and sensors (whose schedule is Raft over the relay):
// members exchange messages, and sensors' schedule class elects a leader.
func TestUpDeploysTeamchatAndSensors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two clusters")
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"up", "../../examples/teamchat", "--nodes", "4", "--duration", "8s"}, &out, &errOut); code != ExitOK {
		t.Fatalf("rime up teamchat: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	// Two members (the last two nodes; the relays come first) see the
	// same, growing, message log.
	lines := regexp.MustCompile(`teamchat: messages \[\S+ \S+ (\d+) (\d+)\]`).FindAllStringSubmatch(out.String(), -1)
	if len(lines) == 0 || lines[len(lines)-1][1] == "0" {
		t.Fatalf("no messages exchanged:\n%s", out.String())
	}
	out.Reset()
	if code := Main([]string{"up", "../../examples/sensors", "--nodes", "4", "--duration", "6s"}, &out, &errOut); code != ExitOK {
		t.Fatalf("rime up sensors: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !regexp.MustCompile(`schedule: members \d+, leader n\w+`).MatchString(out.String()) || !strings.Contains(out.String(), "energy:") {
		t.Fatalf("sensors' classes did not come up:\n%s", out.String())
	}
}
