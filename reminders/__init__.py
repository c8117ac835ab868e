"""What the warehouse tells people after a run: today's action items per owner, the team-chat
reminders that carry them, and the weekly pipeline review (周报)."""
