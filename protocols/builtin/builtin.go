// Package builtin registers every built-in protocol implementation in
// protocols.Default; import it for its side effect. The catalogue test
// here keeps the specs' `implemented` flags and the registry honest with
// each other.
package builtin

import (
	_ "github.com/rime-dev/rime/protocols/causalbroadcast"
	_ "github.com/rime-dev/rime/protocols/checkpointedchannel"
	_ "github.com/rime-dev/rime/protocols/convergentchannel"
	_ "github.com/rime-dev/rime/protocols/crdtreplication"
	_ "github.com/rime-dev/rime/protocols/durablestorage"
	_ "github.com/rime-dev/rime/protocols/e2eencryption"
	_ "github.com/rime-dev/rime/protocols/epidemicbroadcast"
	_ "github.com/rime-dev/rime/protocols/hubrelay"
	_ "github.com/rime-dev/rime/protocols/raft"
	_ "github.com/rime-dev/rime/protocols/swim"
	_ "github.com/rime-dev/rime/protocols/tcpmtls"
)
