"""What puts jobs into the queue and changes them: dispatch and submit (the controller),
a disc put in a ripper's drive, and a person's rip, cancel, retry, priority, forget and
rename."""
