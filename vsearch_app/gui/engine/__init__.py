"""The desktop app's engine side: job-queue lanes (QThread + worker) around core.service, and the controller that
owns them. Only this package calls the engine; views talk to the controller's signals and methods."""
