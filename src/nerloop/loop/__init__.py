"""The active-learning loop around the stages: one cycle (fetch, repro, commit, send), the inbox and
what is held back, the git/DVC repository, the project lock, status, the forecast and stopping rule."""
