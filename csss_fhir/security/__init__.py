"""security: who the caller is (passwords, tokens, OTP) and what they may read.

Workflow steps are not decided here: `workflow/` owns who may take which step in which state.
"""
