/*
 * report - `backstop report`: the backscatter report over JSON logs of one
 * or many instances (README.md "Backscatter report").
 */
#ifndef REPORT_H
#define REPORT_H

/* report_main - argv[0] is "report"; returns the exit status (0, 1 a file
 * could not be read, 2 usage). */
int report_main(int argc, char **argv);

#endif
