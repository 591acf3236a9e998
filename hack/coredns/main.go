// A CoreDNS with only the plugins a cluster DNS needs, built by hack/coredns-binaries.sh.
// CoreDNS's documented way to build from external Go source: set dnsserver.Directives to
// the plugins in their execution order (the order of CoreDNS's plugin.cfg) and import just
// those plugins, instead of github.com/coredns/coredns/core/plugin (which imports every
// plugin and with them the cloud SDKs). Why each plugin: see hack/coredns-binaries.sh.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// The order of github.com/coredns/coredns/plugin.cfg, restricted to the plugins imported above:
// each plugin sees a query before the ones after it.
var directives = []string{
	"reload",
	"bind",
	"ready",
	"health",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"kubernetes",
	"loop",
	"forward",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
