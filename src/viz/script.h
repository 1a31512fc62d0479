/* Scripted driving of the app (bfnviz --script FILE), for screenshots and
 * demos without a person: one command per line, '#' starts a comment.
 *
 *   frames N                 draw N frames at about 60 per second
 *   sleep S                  keep drawing for S seconds
 *   wait-run [S]             until the shown run has finished (default 120 s)
 *   wait-step N [S]          until the run has N kept steps and shows the N-th (600 s)
 *   wait-train STEP [S]      until training has reached STEP (default 600 s)
 *   key NAME [shift|ctrl] [*N]  a key press (N times), NAME as SDL names it ("Right", "F1")
 *   type TEXT                text typed into the focused field
 *   move ID | move X Y       mouse to a widget's centre (ids: see app.h) or a point
 *   click ID [FX] | click X Y  press and release (FX: 0..1 across the widget)
 *   drag ID FX0 FX1          press at FX0 across the widget, move to FX1, release
 *   drag X0 Y0 X1 Y1         press at a point, move to another in 16 steps, release
 *   pixel CELL X Y           mouse over pixel (X, Y) of a cell
 *   guidance W               guidance weight W, 1 (off) to 4; refused without a guide
 *   screenshot PATH          the current frame as a PNG
 *   quit                     close the app (as the window's close button)
 */
#ifndef VIZ_SCRIPT_H
#define VIZ_SCRIPT_H

#include <stddef.h>

#include "app.h"

/* Runs the script at path; 0 on success, else a message in err naming the line. */
int viz_script_run(viz_app *a, const char *path, char *err, size_t cap);
/* Draws n frames paced at about 60 per second. */
void viz_script_frames(viz_app *a, int n);

#endif
