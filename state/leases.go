package state

import (
	"context"
	"time"
)

// ReleaseLeases returns every leased plan job to the queue, whoever holds
// it. Call it once after Open and before starting planners: bbolt locks its
// file for one process, so any lease found then was held by a process that
// died (SIGKILL, power loss), and waiting for it to expire would only delay
// the delivery. Jobs past Options.MaxPlanAttempts are abandoned with a reason,
// as RescueExpiredLeases does.
func (s *Store) ReleaseLeases(ctx context.Context) (int, error) {
	return s.RescueExpiredLeases(ctx, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
}
