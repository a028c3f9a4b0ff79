"""Training and fine-tuning with simulated interactive prompting (`masklet train`).

Layers: data (`masklet.train.data`) -> prompts -> rollout (through the session layer's
engine and memory rule, never the predictors) -> losses -> `TrainingStep` -> `Trainer`
(optimizer, schedule, checkpoints, DDP, metrics, validation). See docs/training.md.
"""
