package config

import (
	"strings"
	"testing"
	"time"
)

// TestAud4LifetimeZeroAccepted: Postfix's bounce_queue_lifetime = 0 ("try
// only once") was refused at start with "0s is not positive"; a negative
// lifetime is still refused.
func TestAud4LifetimeZeroAccepted(t *testing.T) {
	c := Default()
	c.Delivery.MaxQueueLifetime, c.Delivery.BounceQueueLifetime = 0, 0
	if err := c.Validate(); err != nil {
		t.Errorf("lifetimes of 0: %v; want accepted (Postfix: try only once)", err)
	}
	c.Delivery.BounceQueueLifetime = -time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "delivery.bounce_queue_lifetime: -1s is negative") {
		t.Errorf("a negative lifetime: %v; want refused", err)
	}
}
