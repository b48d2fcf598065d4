"""`python -m seq2seq.explore`: the explorer's command line (seq2seq.cli.explore)."""

from seq2seq.cli.explore import main

if __name__ == "__main__":
    main()
