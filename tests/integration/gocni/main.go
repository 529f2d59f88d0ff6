// SPDX-License-Identifier: Apache-2.0

// Command gocni drives CNI plugins through containerd's go-cni library (libcni underneath)
// the way containerd's CRI plugin does: a loopback network plus the first network
// configuration found in a conf dir, CNI_ARGS built from pod labels, results cached by
// libcni. The integration tests run it inside the simulated node's netns and check that
// Sluice behaves under a real runtime library exactly as under direct exec.
//
// Usage: gocni -op add|check|del -conf-dir DIR -plugin-dirs DIR[:DIR] -netns PATH -id ID
//
//	[-labels K=V;K=V]
//
// Prints one JSON object on stdout: {"ok": true, ...} or {"ok": false, "error": "..."}
// (exit status 1).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	gocni "github.com/containerd/go-cni"
)

type output struct {
	OK         bool                     `json:"ok"`
	Op         string                   `json:"op"`
	Error      string                   `json:"error,omitempty"`
	Interfaces map[string]*gocni.Config `json:"interfaces,omitempty"`
	Raw        interface{}              `json:"raw,omitempty"`
}

func emit(o output) {
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(o); err != nil {
		fmt.Fprintf(os.Stderr, "gocni: encode output: %v\n", err)
		os.Exit(2)
	}
	if !o.OK {
		os.Exit(1)
	}
}

func parseLabels(s string) map[string]string {
	labels := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		parts := strings.SplitN(kv, "=", 2)
		if len(parts) == 2 {
			labels[parts[0]] = parts[1]
		}
	}
	return labels
}

func main() {
	op := flag.String("op", "", "add, check or del")
	confDir := flag.String("conf-dir", "", "directory holding the network configuration")
	pluginDirs := flag.String("plugin-dirs", "", "colon-separated plugin directories")
	netns := flag.String("netns", "", "path of the pod's network namespace")
	id := flag.String("id", "", "container (sandbox) ID")
	labels := flag.String("labels", "", "pod labels passed as CNI_ARGS, K=V;K=V")
	flag.Parse()

	out := output{Op: *op}
	if *op == "" || *confDir == "" || *pluginDirs == "" || *id == "" {
		out.Error = "-op, -conf-dir, -plugin-dirs and -id are required"
		emit(out)
	}

	// As containerd's CRI: two networks (loopback + the default one) must be loaded. go-cni's
	// built-in loopback network is pinned to cniVersion 0.3.1, which predates CHECK, so a
	// check loads the default network alone (it still gets eth0).
	loadOpts := []gocni.Opt{gocni.WithLoNetwork, gocni.WithDefaultConf}
	minNetworks := 2
	if *op == "check" {
		loadOpts = []gocni.Opt{gocni.WithDefaultConf}
		minNetworks = 1
	}
	c, err := gocni.New(gocni.WithMinNetworkCount(minNetworks),
		gocni.WithPluginConfDir(*confDir),
		gocni.WithPluginDir(strings.Split(*pluginDirs, ":")))
	if err != nil {
		out.Error = fmt.Sprintf("init: %v", err)
		emit(out)
	}
	if err := c.Load(loadOpts...); err != nil {
		out.Error = fmt.Sprintf("load: %v", err)
		emit(out)
	}

	nsOpts := []gocni.NamespaceOpts{gocni.WithLabels(parseLabels(*labels))}
	ctx := context.Background()
	switch *op {
	case "add":
		res, err := c.Setup(ctx, *id, *netns, nsOpts...)
		if err != nil {
			out.Error = fmt.Sprintf("setup: %v", err)
			emit(out)
		}
		out.Interfaces = res.Interfaces
		out.Raw = res.Raw()
	case "check":
		if err := c.Check(ctx, *id, *netns, nsOpts...); err != nil {
			out.Error = fmt.Sprintf("check: %v", err)
			emit(out)
		}
	case "del":
		if err := c.Remove(ctx, *id, *netns, nsOpts...); err != nil {
			out.Error = fmt.Sprintf("remove: %v", err)
			emit(out)
		}
	default:
		out.Error = "unknown -op " + *op
		emit(out)
	}
	out.OK = true
	emit(out)
}
