from django.core.management.base import BaseCommand

from apps.datasets.demo import demo_datasets_load


class Command(BaseCommand):
    help = "Import the demo datasets in demo_data/ that configs/demo uses (skips those already present)."

    def handle(self, **options):
        reports = demo_datasets_load()
        for report in reports:
            self.stdout.write(report.summary())
        if not reports:
            self.stdout.write("Demo datasets already present.")
