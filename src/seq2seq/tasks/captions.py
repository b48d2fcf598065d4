"""Captioning composed digit images (seq2seq.data.digit_images) with `ImageCaptioner` models.

The pair machinery is PairsTask's: captions are word targets `<bos> three seven <eos>`, metrics are
val/acc (exact caption), val/token_acc (word accuracy), val/bleu and val/loss. The source of a pair
is an image (1, HEIGHT, width) instead of token ids, so batches are (images, None, tgt).
"""

from typing import ClassVar

import torch

from seq2seq.core.checks import COUNT, POSITIVE
from seq2seq.core.registry import register_task
from seq2seq.data import digit_images
from seq2seq.data.split import seeded_split
from seq2seq.tasks.codec import ImageCodec
from seq2seq.tasks.pairs import PairsTask


@register_task("captions")
class CaptionsTask(PairsTask):
    family = "captioner"
    CODEC = ImageCodec
    EXTRAS = ("sklearn", "PIL")
    FIXED_OPTIONS = ("tokenize",)  # captions are words
    CHECKS: ClassVar[dict] = {"num_train": COUNT, "num_val": COUNT, "max_digits": POSITIVE}

    def __init__(
        self,
        num_train: int = 20_000,  # composed training images
        num_val: int = 2_000,  # composed validation images, from digit images never used in training
        max_digits: int = 4,  # digits per image: 1..max_digits
        val_fraction: float = 0.2,  # share of the 1,797 source digit images kept for validation
        max_length: int | None = None,  # caption words; null: max_digits
        seed: int = 0,  # the split, the composed images and each epoch's shuffle (the run's seed)
        **options,  # PairsTask's options
    ):
        images, labels = digit_images.load_digit_images()
        train_sources, val_sources = seeded_split(list(range(len(labels))), val_fraction, seed, "digit images")
        self.max_digits = max_digits
        self.source_images = {"train": train_sources, "val": val_sources}  # digit images each split draws on
        self.images, splits = {}, {}
        for split, sources, num, offset in (("train", train_sources, num_train, 0), ("val", val_sources, num_val, 1)):
            self.images[split], captions = digit_images.compose(images, labels, sources, num, max_digits, seed + offset)
            splits[split] = [(f"#{i}", caption) for i, caption in enumerate(captions)]  # source: image number
        max_length = max_digits if max_length is None else max_length
        super().__init__(splits, tokenize="word", max_length=max_length, seed=seed, **options)

    def vocab_tokens(self):
        return (caption for _, caption in self.tokenized["train"])

    def tensors(self, split: str) -> dict:
        tgt, tgt_len = self.codec.pad([self.codec.target_ids(t) for _, t in self.tokenized[split]])
        n = len(tgt_len)
        return {"src": self.images[split], "src_len": None, "tgt": tgt, "lengths": ([0] * n, tgt_len.tolist())}

    def batch(self, split: str, rows: list[int]):
        d = self.data[split]
        index = torch.tensor(rows, device=d["tgt"].device)
        T = max(d["lengths"][1][i] for i in rows)
        return d["src"][index], None, d["tgt"][index, :T]  # (B, 1, height, width), None, (B, T)

    def state_dict(self) -> dict:
        return {**self.codec.state_dict(), "kind": "captions", "image_size": list(self.images["val"].shape[2:])}

    @torch.no_grad()
    def figures(self, model) -> dict:
        """The first num_heatmaps validation images titled with their greedy captions."""
        k = min(self.num_heatmaps, len(self.tokenized["val"]))
        if k == 0:
            return {}
        images, _, _ = self.batch("val", list(range(k)))
        pred = model.generate(images, self.codec.start_id, self.codec.steps).tolist()
        from matplotlib.figure import Figure  # only when drawing (see seq2seq.tasks.plots)

        fig = Figure(figsize=(3.2 * k, 1.6))
        for ax, image, ids in zip(fig.subplots(1, k, squeeze=False)[0], images.cpu(), pred, strict=True):
            ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(self.codec.decode(ids), fontsize=9)
            ax.axis("off")
        fig.tight_layout()
        return {"val/captions": fig}
