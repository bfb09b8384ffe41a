// Package registry lists kappa's processors: adding one is a package
// under processors/ and a line here.
package registry

import (
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/dp"
	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/processors/live"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/processors/similar"
	"github.com/kappa-stream/kappa/processors/topk"
)

// Specs are the registered processors, in the order their stages see
// each listen and their fields appear in a version's configuration.
func Specs() []processors.Spec {
	return []processors.Spec{
		rollups.Spec,
		live.Spec,
		fans.Spec,
		similar.Spec,
		topk.Spec,
		dp.Spec,
	}
}

// NewConfig is the default configuration of the registered processors.
func NewConfig() processors.Config { return processors.NewConfig(Specs()) }
