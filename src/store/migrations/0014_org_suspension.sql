-- Who suspended an organization: its owners ('owner') or an instance admin
-- ('instance_admin'); NULL while it is active. Owners cannot lift an instance admin's
-- suspension. A suspension made before this column existed is treated as an instance
-- admin's, the safe reading: an instance admin can still lift it.
ALTER TABLE organizations ADD COLUMN suspended_by TEXT
    CHECK (suspended_by IN ('owner', 'instance_admin'));
UPDATE organizations SET suspended_by = 'instance_admin' WHERE status = 'suspended';
