//go:build tools

// Package tools pins the Kubernetes commands build.sh compiles, so `go mod tidy` resolves
// every module they need into go.mod/go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
