module github.com/modelyard/modelyard/deploy/argocd

go 1.22

require (
	github.com/yuin/gopher-lua v1.1.1
	sigs.k8s.io/yaml v1.4.0
)
