// kind-config-check: is a kind cluster config (kind-config.yaml) one that `kind create cluster
// --config` would accept? Checked with kind's own code at the version go.mod pins, since kind
// itself cannot run here (it needs privileged containers):
//
//  1. a strict decode into the public sigs.k8s.io/kind/pkg/apis/config/v1alpha4.Cluster, the
//     way kind decodes it (go.yaml.in/yaml/v3 with KnownFields: a field the type does not
//     have, such as a misspelling, is an error naming it and its line), after checking kind
//     and apiVersion;
//  2. kind's own loading and validation, which are internal packages
//     (sigs.k8s.io/kind/pkg/internal/apis/config/encoding.Parse: decode, defaults, conversion;
//     (*config.Cluster).Validate: cluster name, node roles and images, at least one
//     control-plane node, subnets, ports, kube-proxy mode). Go forbids importing those, and
//     the only public caller (cluster.Provider.Create) validates after asking the container
//     runtime whether the cluster exists, so they are reached with //go:linkname (below): the
//     same compiled functions kind runs. Renamed upstream, the build fails at link time.
//
// Prints "ok: ..." and exits 0, or prints what is wrong and exits 1.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"unsafe"

	yaml "go.yaml.in/yaml/v3"

	// Links kind's internal config packages into this binary (cluster imports them).
	_ "sigs.k8s.io/kind/pkg/cluster"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

const (
	wantKind       = "Cluster"
	wantAPIVersion = "kind.x-k8s.io/v1alpha4"
)

// kindParse is sigs.k8s.io/kind/pkg/internal/apis/config/encoding.Parse:
// func(raw []byte) (*config.Cluster, error); the internal *config.Cluster is opaque here.
//
//go:linkname kindParse sigs.k8s.io/kind/pkg/internal/apis/config/encoding.Parse
func kindParse(raw []byte) (unsafe.Pointer, error)

// kindValidate is the method (*config.Cluster).Validate() error of the same internal package.
//
//go:linkname kindValidate sigs.k8s.io/kind/pkg/internal/apis/config.(*Cluster).Validate
func kindValidate(cluster unsafe.Pointer) error

func check(raw []byte) (*v1alpha4.Cluster, error) {
	var meta v1alpha4.TypeMeta
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	if meta.Kind != wantKind || meta.APIVersion != wantAPIVersion {
		return nil, fmt.Errorf("kind %q, apiVersion %q: want kind %q, apiVersion %q",
			meta.Kind, meta.APIVersion, wantKind, wantAPIVersion)
	}
	cluster := &v1alpha4.Cluster{}
	decoder := yaml.NewDecoder(bytes.NewReader(raw))
	decoder.KnownFields(true)
	if err := decoder.Decode(cluster); err != nil {
		return nil, fmt.Errorf("strict decode into v1alpha4.Cluster: %w", err)
	}
	// More than one YAML document: kind reads only the first, so the rest would be ignored.
	var extra interface{}
	if err := decoder.Decode(&extra); err == nil {
		return nil, errors.New("more than one YAML document (kind reads only the first)")
	}
	internal, err := kindParse(raw)
	if err != nil {
		return nil, fmt.Errorf("kind's loader: %w", err)
	}
	if err := kindValidate(internal); err != nil {
		return nil, fmt.Errorf("kind's validation: %w", err)
	}
	return cluster, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kind-config-check KIND_CONFIG.yaml")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err == nil {
		var cluster *v1alpha4.Cluster
		cluster, err = check(raw)
		if err == nil {
			roles := make([]string, 0, len(cluster.Nodes))
			for _, node := range cluster.Nodes {
				roles = append(roles, string(node.Role))
			}
			fmt.Printf("ok: %s: kind cluster %q, nodes %v\n", os.Args[1], cluster.Name, roles)
			return
		}
	}
	fmt.Fprintf(os.Stderr, "kind-config-check: %s: %v\n", os.Args[1], err)
	os.Exit(1)
}
