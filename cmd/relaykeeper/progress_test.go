package main

import (
	"github.com/relaykeeper/relaykeeper/internal/deliver"

	progressbar "github.com/relaykeeper/relaykeeper/internal/progress"
)

var _ deliver.Progress = (*progressbar.Bar)(nil)
