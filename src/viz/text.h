/* Text through SDL_ttf: one font file opened at three sizes (scaled by the UI
 * zoom), and a cache of rendered strings as textures so that a label costs
 * one texture copy per frame. Main thread only. */
#ifndef VIZ_TEXT_H
#define VIZ_TEXT_H

#include <SDL.h>

typedef enum { VIZ_FONT_SMALL, VIZ_FONT_NORMAL, VIZ_FONT_LARGE, VIZ_FONT_COUNT } viz_font;

typedef struct viz_text viz_text;

/* Opens font_path at the base sizes times zoom. On failure returns NULL and
 * writes a one-line reason into err. */
viz_text *viz_text_create(SDL_Renderer *ren, const char *font_path, float zoom, char *err,
                          size_t cap);
void viz_text_destroy(viz_text *t);

/* Reopens the fonts for a new zoom and empties the cache. 0 on success; on
 * failure the fonts of the old zoom stay in use. */
int viz_text_set_zoom(viz_text *t, float zoom, char *err, size_t cap);

/* Size in pixels of s in font f (s may be empty). */
void viz_text_size(viz_text *t, viz_font f, const char *s, int *w, int *h);
int viz_text_height(viz_text *t, viz_font f);

/* Draws s with its top-left corner at (x, y); returns its width. */
int viz_text_draw(viz_text *t, viz_font f, const char *s, int x, int y, SDL_Color c);
/* The same, drawn only when its width is at most max_w; returns the width
 * either way (one cache lookup, for callers that shorten what does not fit). */
int viz_text_draw_within(viz_text *t, viz_font f, const char *s, int x, int y, SDL_Color c,
                         int max_w);

/* Frees strings not drawn for a while; call once per drawn frame. */
void viz_text_end_frame(viz_text *t);

/* Cached strings now held (for tests and the memory figure). */
int viz_text_cached(const viz_text *t);

#endif
