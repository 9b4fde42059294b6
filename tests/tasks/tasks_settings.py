"""Sizes of the tiny multi-task twin and its training, shared by the fixtures and tests of tests/tasks
(a module of its own: ``from conftest import`` picks whichever conftest was imported first).
"""

TINY_MODEL = ["frame_height=18", "frame_width=32", "perspective.retina_height=12", "perspective.retina_width=18",
              "modulation.hidden=8", "modulation.features=2", "feedforward.block_channels=[4, 8]",
              "feedforward.pools=[2, 1]", "feedforward.layers_per_block=1", "recurrent.in_channels=8",
              "recurrent.hidden=8", "recurrent.out_channels=8"]
TRAIN = ["epochs=1", "iterations=200", "optimizer=adamw", "lr=0.01", "weight_decay=0.0", "clip_mode=norm",
         "clip_value=1.0", "batch_size=4", "clip_frames=40", "burn_in=5", "checkpoint_every=0", "log_every=50",
         "schedule.restart=false", "schedule.warmup=0.05", "device=cpu", "preload=cpu", "workers=0"]
