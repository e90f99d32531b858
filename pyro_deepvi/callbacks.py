"""Per-epoch callbacks: hand each epoch's metrics record to the user's own loggers.

``train(config, callbacks=[fn])`` calls ``fn(record)`` after every epoch, on the
main process, with the record it appends to ``metrics.jsonl``: ``epoch``,
``step``, ``seconds``, the training parts ``train_*`` (``train_elbo``, each
term), the term weights ``weight_*`` and, on validation epochs, ``valid_*``::

    pyro_deepvi.train(config, callbacks=[lambda record: wandb.log(record, step=record["epoch"])])
"""


def tensorboard_writer(log_dir):
    """A callback writing every number of the record as a TensorBoard scalar at its epoch.

    It uses :class:`torch.utils.tensorboard.SummaryWriter`, which needs the
    ``tensorboard`` package (not a dependency of pyro-deepvi).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ImportError(
            f"the TensorBoard writer needs the tensorboard package ({e}); install it with `pip install tensorboard`"
        ) from None
    writer = SummaryWriter(log_dir=str(log_dir))

    def write(record):
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(key, value, record["epoch"])
        writer.flush()

    return write
