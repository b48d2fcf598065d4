"""Images of 1 to 4 handwritten digits side by side, captioned with the digits as words (section 4.3
of the chapter, im2txt, on data that ships with scikit-learn: `load_digits`, 1,797 images of 8x8
pixels, no download).

Layout: a canvas is (1, HEIGHT, width) floats in [0, 1], 1 = ink, width = max_digits * 10 + 2. Each
digit lands at a random height (0-4 px down) after a random gap (0-2 px), left to right, so the
caption reads the digits in order: `three seven one`. The source images are split between train
and validation first, so validation canvases are made of digits never seen in training.

    python -m seq2seq.data.digit_images out_dir --num 5    # writes example PNGs named by caption
"""

import argparse
import random
from pathlib import Path

import numpy as np
import torch

from seq2seq.core.errors import DataError
from seq2seq.core.extras import require

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT, HEIGHT = 8, 12


def canvas_width(max_digits: int) -> int:
    return max_digits * (DIGIT + 2) + 2


def load_digit_images() -> tuple[torch.Tensor, list[int]]:
    """(1797, 8, 8) ink in [0, 1] and the digit of each image."""
    digits = require("sklearn.datasets", "task=captions").load_digits()
    return torch.tensor(digits.images, dtype=torch.float32) / 16.0, [int(t) for t in digits.target]


def compose(
    images: torch.Tensor, labels: list[int], sources: list[int], num: int, max_digits: int, seed: int
) -> tuple[torch.Tensor, list[str]]:
    """num canvases (num, 1, HEIGHT, width) drawn from the given source images, and their captions."""
    rng = random.Random(seed)
    canvases = torch.zeros(num, 1, HEIGHT, canvas_width(max_digits))
    captions = []
    for n in range(num):
        x, words = rng.randint(0, 2), []
        for _ in range(rng.randint(1, max_digits)):
            i = rng.choice(sources)
            y = rng.randint(0, HEIGHT - DIGIT)
            canvases[n, 0, y : y + DIGIT, x : x + DIGIT] = images[i]
            words.append(WORDS[labels[i]])
            x += DIGIT + rng.randint(0, 2)
        captions.append(" ".join(words))
    return canvases, captions


def save_png(canvas: torch.Tensor, path: str | Path, scale: int = 4) -> None:
    """A (1, H, W) canvas as a grayscale PNG (white ink on black), enlarged `scale` times."""
    Image = require("PIL.Image", "writing PNG images")

    pixels = (canvas[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    image = Image.fromarray(pixels, mode="L")
    image.resize((image.width * scale, image.height * scale), Image.NEAREST).save(path)


MAX_PIXELS = 4096 * 4096  # a crafted PNG of a few KB can declare gigapixels


def load_png(path: str | Path, height: int, width: int) -> torch.Tensor:
    """A PNG (any size, white ink on black) as a (1, height, width) canvas like the training images."""
    Image = require("PIL.Image", "reading PNG images")

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:  # reads the header only: the size is known before any pixel
            if image.width * image.height > MAX_PIXELS:
                raise DataError(f"{path}: {image.width} x {image.height} pixels; this reads images of at most "
                                f"{MAX_PIXELS:,} pixels")  # fmt: skip
            gray = image.convert("L").resize((width, height), Image.BOX)  # box: averages, so 4x -> 1x is exact
    except (Image.UnidentifiedImageError, Image.DecompressionBombError, OSError) as e:
        raise DataError(f"{path}: not a readable image ({str(e)[:200]})") from None
    return torch.from_numpy(np.asarray(gray, dtype=np.float32)).view(1, height, width) / 255.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write example digit-caption images as PNG files.")
    parser.add_argument("out", type=Path, help="folder for the PNGs")
    parser.add_argument("--num", type=int, default=5)
    parser.add_argument("--max-digits", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    images, labels = load_digit_images()
    canvases, captions = compose(images, labels, list(range(len(labels))), args.num, args.max_digits, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for n, (canvas, caption) in enumerate(zip(canvases, captions, strict=True)):
        save_png(canvas, args.out / f"{n}_{caption.replace(' ', '_')}.png")
    print(f"wrote {args.num} images to {args.out}")


if __name__ == "__main__":
    main()
