//go:build tools

// Package tools pins the kustomize release lookctl's differential tests use as their
// oracle. `go build sigs.k8s.io/kustomize/kustomize/v5` from this module builds it.
package tools

import (
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
