#include "text.h"

#include <SDL_ttf.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "viz.h"

#define CACHE_MAX 768   /* entries; labels change slowly, numbers evict */
#define CACHE_KEEP 90   /* frames an unused entry survives */

static const int BASE_PX[VIZ_FONT_COUNT] = {12, 14, 18};

typedef struct {
    uint64_t hash;
    char *s;
    int font;
    uint32_t rgba;
    SDL_Texture *tex;
    int w, h;
    long used; /* frame it was last drawn in */
} entry;

struct viz_text {
    SDL_Renderer *ren;
    char *path;
    TTF_Font *font[VIZ_FONT_COUNT];
    entry e[CACHE_MAX];
    int n;
    long frame;
};

static uint64_t hash_key(const char *s, int font, uint32_t rgba)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ ((uint64_t)font << 32 | rgba);
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static void entry_free(entry *e)
{
    if (e->tex)
        SDL_DestroyTexture(e->tex);
    free(e->s);
    memset(e, 0, sizeof *e);
}

static void cache_clear(viz_text *t)
{
    for (int i = 0; i < t->n; i++)
        entry_free(&t->e[i]);
    t->n = 0;
}

static void close_fonts(viz_text *t)
{
    for (int i = 0; i < VIZ_FONT_COUNT; i++) {
        if (t->font[i])
            TTF_CloseFont(t->font[i]);
        t->font[i] = NULL;
    }
}

int viz_text_set_zoom(viz_text *t, float zoom, char *err, size_t cap)
{
    /* the new sizes are opened first: if the font file went away, the old
     * fonts stay in use instead of leaving none to draw with */
    TTF_Font *f[VIZ_FONT_COUNT] = {0};
    for (int i = 0; i < VIZ_FONT_COUNT; i++) {
        int px = (int)(BASE_PX[i] * zoom + 0.5f);
        f[i] = TTF_OpenFont(t->path, px < 6 ? 6 : px);
        if (!f[i]) {
            viz_fmt(err, cap, "cannot open font %s: %s", t->path, TTF_GetError());
            while (i-- > 0)
                TTF_CloseFont(f[i]);
            return -1;
        }
        TTF_SetFontHinting(f[i], TTF_HINTING_LIGHT);
    }
    cache_clear(t);
    close_fonts(t);
    memcpy(t->font, f, sizeof f);
    return 0;
}

viz_text *viz_text_create(SDL_Renderer *ren, const char *font_path, float zoom, char *err,
                          size_t cap)
{
    /* TTF_Init and TTF_Quit are reference counted: one pair per viz_text */
    if (TTF_Init() != 0) {
        viz_fmt(err, cap, "SDL_ttf: %s", TTF_GetError());
        return NULL;
    }
    viz_text *t = calloc(1, sizeof *t);
    if (!t || !(t->path = malloc(strlen(font_path) + 1))) {
        free(t);
        TTF_Quit();
        viz_fmt(err, cap, "out of memory");
        return NULL;
    }
    strcpy(t->path, font_path);
    t->ren = ren;
    if (viz_text_set_zoom(t, zoom, err, cap) != 0) {
        free(t->path);
        free(t);
        TTF_Quit();
        return NULL;
    }
    return t;
}

void viz_text_destroy(viz_text *t)
{
    if (!t)
        return;
    cache_clear(t);
    close_fonts(t);
    free(t->path);
    free(t);
    TTF_Quit();
}

void viz_text_size(viz_text *t, viz_font f, const char *s, int *w, int *h)
{
    int tw = 0, th = TTF_FontHeight(t->font[f]);
    if (s && *s)
        TTF_SizeUTF8(t->font[f], s, &tw, &th);
    if (w)
        *w = tw;
    if (h)
        *h = th;
}

int viz_text_height(viz_text *t, viz_font f) { return TTF_FontHeight(t->font[f]); }

/* Slot for a new entry: a free one, else the least recently drawn. */
static entry *cache_slot(viz_text *t)
{
    if (t->n < CACHE_MAX)
        return &t->e[t->n++];
    int old = 0;
    for (int i = 1; i < t->n; i++)
        if (t->e[i].used < t->e[old].used)
            old = i;
    entry_free(&t->e[old]);
    return &t->e[old];
}

/* The cached texture of s in f and c, rendered now if it is not cached. */
static entry *cached(viz_text *t, viz_font f, const char *s, SDL_Color c)
{
    uint32_t rgba = (uint32_t)c.r << 24 | (uint32_t)c.g << 16 | (uint32_t)c.b << 8 | c.a;
    uint64_t h = hash_key(s, (int)f, rgba);
    for (int i = 0; i < t->n; i++)
        if (t->e[i].hash == h && t->e[i].font == (int)f && t->e[i].rgba == rgba &&
            !strcmp(t->e[i].s, s))
            return &t->e[i];
    SDL_Surface *surf = TTF_RenderUTF8_Blended(t->font[f], s, c);
    if (!surf)
        return NULL;
    SDL_Texture *tex = SDL_CreateTextureFromSurface(t->ren, surf);
    int w = surf->w, hh = surf->h;
    SDL_FreeSurface(surf);
    char *copy = malloc(strlen(s) + 1);
    if (!tex || !copy) {
        if (tex)
            SDL_DestroyTexture(tex);
        free(copy);
        return NULL;
    }
    strcpy(copy, s);
    entry *e = cache_slot(t);
    *e = (entry){.hash = h, .s = copy, .font = (int)f, .rgba = rgba, .tex = tex, .w = w, .h = hh};
    return e;
}

int viz_text_draw_within(viz_text *t, viz_font f, const char *s, int x, int y, SDL_Color c,
                         int max_w)
{
    if (!s || !*s)
        return 0;
    entry *e = cached(t, f, s, c);
    if (!e)
        return 0;
    e->used = t->frame;
    if (e->w > max_w)
        return e->w;
    SDL_Rect dst = {x, y, e->w, e->h};
    SDL_RenderCopy(t->ren, e->tex, NULL, &dst);
    return e->w;
}

int viz_text_draw(viz_text *t, viz_font f, const char *s, int x, int y, SDL_Color c)
{
    return viz_text_draw_within(t, f, s, x, y, c, INT_MAX);
}

void viz_text_end_frame(viz_text *t)
{
    t->frame++;
    if (t->n < CACHE_MAX / 2)
        return;
    for (int i = 0; i < t->n;) {
        if (t->frame - t->e[i].used > CACHE_KEEP) {
            entry_free(&t->e[i]);
            t->e[i] = t->e[--t->n];
            memset(&t->e[t->n], 0, sizeof t->e[t->n]);
        } else {
            i++;
        }
    }
}

int viz_text_cached(const viz_text *t) { return t->n; }
