// Package tcpmtls is the "tcp-mtls" transport: the node's own Network
// endpoint offered as the bottom layer of a stack. In production the
// node's Network is network/tlsnet (TCP, TLS 1.3, certificates bound to
// node keys); in tests and `rime verify` it is network/memnet, so the
// layers above run unchanged over injected faults.
package tcpmtls

import (
	"context"
	"fmt"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
)

// Name is the protocol's name in its spec.
const Name = "tcp-mtls"

func init() {
	protocols.Default.MustRegister(protocols.Module{Name: Name, Provides: []string{"transport"},
		New: func() protocols.Instance { return &Transport{} }})
}

// Transport hands the node's endpoint to the layers above. The node owns
// the endpoint, so Close leaves it open for the node's other classes.
type Transport struct {
	ep network.Endpoint
}

func (t *Transport) Provision(env *protocols.Env) error {
	t.ep = env.Network
	return nil
}

func (t *Transport) Validate() error {
	if t.ep == nil {
		return fmt.Errorf("%s: the node has no network endpoint", Name)
	}
	return nil
}

func (t *Transport) Start(context.Context) error { return nil }
func (t *Transport) Close() error                { return nil }
func (t *Transport) Endpoint() network.Endpoint  { return t.ep }

var _ protocols.Transport = (*Transport)(nil)
