"""Encoding on a Dask cluster: a local one of N worker processes, or one already running.

Each partition of a line corpus is a task: a worker reads it from the corpus file, featurizes and
encodes it with the numpy encoder it was sent (see `encoding.Encoder`), writes it as a shard and
hands back the shard's entry, which the driver takes in partition order. A worker that dies has its
tasks run again elsewhere by the scheduler; each partition is one shard, named by its number and
taken once, so nothing is lost or counted twice. dask.distributed is imported only here, and this module only when a cluster is asked for.
"""

import logging
import resource
import sys

from ..errors import SemhashError
from .encoding import encode_partition

# A task whose worker dies is run again on another this many times before the job fails
# (dask's `allowed-failures`); a task that raises is retried this many times.
RETRIES = 3


def peak_memory():
    """This process's peak resident memory in bytes: Linux's VmHWM, the peak of this program alone
    (getrusage's counts the parent's memory too in a process started by fork and exec, as a
    worker is), else getrusage's (KiB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class Cluster:
    """A Dask client for encoding partitions, as a context manager: with `workers`, a LocalCluster
    of that many worker processes of one thread each, started on entry and stopped on exit; with
    `scheduler`, the address of a running cluster, whose workers must see the corpus file at the
    same paths (and the folder the index is written to). After `encode`, `worker_peaks` holds each worker's peak memory in bytes."""

    def __init__(self, workers=None, scheduler=None, retries=RETRIES):
        if (workers is None) == (scheduler is None):
            raise SemhashError("give a number of workers or a scheduler's address, not both or neither")
        self.workers = workers
        self.scheduler = scheduler
        self.retries = retries
        self.client = None
        self._local = None
        self.worker_peaks = {}

    def __enter__(self):
        try:
            import dask
            import distributed
        except ImportError:
            raise SemhashError("encoding on Dask needs dask.distributed: pip install 'semhash[distributed]'") from None
        dask.config.set({"distributed.scheduler.allowed-failures": self.retries})
        try:
            if self.scheduler is not None:
                self.client = distributed.Client(self.scheduler)  # waits distributed.comm.timeouts.connect
            else:
                self._local = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=None, silence_logs=logging.ERROR)
                self.client = distributed.Client(self._local)
        except (OSError, TimeoutError) as error:
            self.__exit__(None, None, None)
            where = f"the Dask scheduler at {self.scheduler}" if self.scheduler else "a local Dask cluster"
            raise SemhashError(f"cannot reach {where} ({error}); check the address, or use --workers") from None
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self._local is not None:
            self._local.close()
        self.client = self._local = None

    def encode(self, source, partitions, job):
        """The PartitionShard of each partition (see `encoding.PartitionJob`), in partition order,
        encoded and written on the workers."""
        import distributed

        job_data = self.client.scatter(job, broadcast=True, hash=False)
        futures = [self.client.submit(encode_partition, source, partition, job_data, retries=self.retries,
                                      key=f"semhash-{job.encoder.digest[:12]}-partition-{partition.number}")
                   for partition in partitions]
        try:
            for partition, future in zip(partitions, futures):
                try:
                    yield future.result()
                except distributed.KilledWorker:
                    raise SemhashError(f"the workers died {self.retries + 1} times encoding rows "
                                       f"{partition.first_row + 1} to {partition.first_row + partition.rows} of "
                                       f"{source.root}; give them more memory, or fewer rows a partition") from None
                future.release()
        finally:
            for future in futures:
                future.cancel()
        self.worker_peaks = self.client.run(peak_memory)
