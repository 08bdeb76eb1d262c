"""Progress bars on stderr that can be silenced, shared by every long step."""

import contextlib
import sys

import click


class _Silent:
    """A progress bar that shows nothing but accepts the same calls."""

    def __init__(self, iterable=None):
        self._iterable = iterable

    def __iter__(self):
        return iter(self._iterable)

    def update(self, n_steps, current_item=None):
        pass


@contextlib.contextmanager
def progress_bar(label, iterable=None, length=None, show=True, show_item=False):
    """Yield a click progress bar on stderr, or a silent stand-in when `show` is false. With
    `show_item`, the text given to `update` beside the steps (a rate, say) is shown after the bar."""
    if not show:
        yield _Silent(iterable)
        return
    with click.progressbar(
        iterable, length=length, label=label, file=sys.stderr, show_pos=True, show_eta=True,
        item_show_func=(lambda item: item) if show_item else None,
    ) as bar:
        yield bar
