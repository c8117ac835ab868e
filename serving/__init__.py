"""The published read-only copy of the marts: publishing it, and the fixed reads of it."""
