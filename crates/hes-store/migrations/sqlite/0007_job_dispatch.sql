-- Scheduled jobs go to the jobs topic when they come due, not when their cycle is created: a
-- job waiting on the bus for its place in a collection window held back its whole partition.
-- `dispatched_at` says a job's record was published; the scheduler's pacer publishes queued
-- jobs due soon that have none. Jobs queued before this migration were published at creation.
ALTER TABLE jobs ADD COLUMN dispatched_at INTEGER;
UPDATE jobs SET dispatched_at = updated_at;
CREATE INDEX jobs_undispatched ON jobs (not_before, id)
    WHERE dispatched_at IS NULL AND state = 'queued';
