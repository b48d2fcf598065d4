"""Training: the loop (loop: `train(cfg) -> metrics`), how a run starts (launch: what the command line completed;
start: fresh, resume or fork; build: what a run is made of), where it stands (state), what it reports
(reporting, loggers, hparams), the checkpoint file (checkpoint) and the run's checkpoints (checkpoints), its
directory (rundir, lock, events, runs), the schedule, precision, the config's schema and checks (config) and
torchrun (distributed). Imports: seq2seq.core, data, models, tasks."""
