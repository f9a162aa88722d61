"""django-q2's `qcluster`, as the one download worker of its database.

It replaces django-q2's command of the same name (the `downloads` app comes first in
INSTALLED_APPS) to add two things the download queue needs:

- a lease (downloads.models.WorkerLease): a second cluster on the same database is refused
  with a message naming the one that runs, instead of requeueing its download and writing
  the same .part beside it;
- a stop that stops the download: django-q2 lets a worker finish its task before the cluster
  stops, which for a download means hours. The worker stops its download on SIGINT (see
  downloads.worker), which Ctrl-C gives the whole process group; a SIGTERM from a service
  manager, or from `start` going away, reaches only this process, so it passes the SIGINT on.
"""

import logging
import os
import signal

from django.core.management.base import CommandError
from django.db import DatabaseError, close_old_connections, connections
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQCommand

from downloads.models import LeaseHeld, WorkerLease

log = logging.getLogger(__name__)


class Command(DjangoQCommand):
    help = "Start the download worker (django-q2's cluster of one worker); one per database."

    def handle(self, *args, cluster_name=None, run_once=False, **options):
        if cluster_name:
            os.environ["Q_CLUSTER_NAME"] = cluster_name
        try:
            WorkerLease.acquire()
        except LeaseHeld as held:
            raise CommandError(str(held)) from None
        connections.close_all()  # not to be shared with the processes the cluster forks
        cluster = Cluster()
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            if stopping:
                return  # our own SIGINT to the group, coming back
            stopping = True
            os.killpg(os.getpgrp(), signal.SIGINT)
            cluster.stop()

        try:
            cluster.start()
            signal.signal(signal.SIGINT, stop)  # after start: the sentinel is forked with django-q2's
            signal.signal(signal.SIGTERM, stop)
            if run_once:
                cluster.stop()
            while cluster.sentinel.is_alive():
                if not self.renew():
                    log.error("the worker lease was taken by another cluster; stopping")
                    stop(None, None)
                cluster.sentinel.join(WorkerLease.RENEW_EVERY)
        finally:
            try:
                WorkerLease.release()
            except DatabaseError as error:  # it frees itself once our processes are gone
                log.warning("could not release the worker lease: %s", error)

    @staticmethod
    def renew():
        """Renew the lease; a database that does not answer for a moment is no reason to stop."""
        try:
            close_old_connections()  # one broken by a database restart is replaced
            return WorkerLease.renew()
        except DatabaseError as error:
            log.warning("could not renew the worker lease: %s", error)
            return True
