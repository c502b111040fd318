-- Conflicting keys in runs with gaps, on BIGINT UNSIGNED up to its top value: a batch
-- matches runs of consecutive keys as ranges, so the replica-only rows in the gaps (which
-- the source never writes) must come through the repair untouched.
CREATE DATABASE gaps;
CREATE TABLE gaps.ids (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  owner VARCHAR(20) NOT NULL
) ENGINE=InnoDB;
