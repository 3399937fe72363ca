/*
 * utf8.c: incremental UTF-8 validation as a small DFA.
 *
 * Each byte maps to a class; the state says how many continuation bytes are
 * still due and, right after some lead bytes, the narrower range the next
 * byte must fall in. The narrow ranges are what rule out overlong forms
 * (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points above
 * U+10FFFF (F4 90..BF). The state survives between calls, so a character may
 * be split across pieces at any byte.
 */
#include "base.h"

enum {
	S_ACCEPT = 0,
	S_CONT1,  /* one more 80..BF */
	S_CONT2,  /* two more 80..BF */
	S_CONT3,  /* three more 80..BF */
	S_E0,     /* after E0: A0..BF, then one more */
	S_ED,     /* after ED: 80..9F, then one more */
	S_F0,     /* after F0: 90..BF, then two more */
	S_F4,     /* after F4: 80..8F, then two more */
	S_REJECT, /* sticky */
	S_COUNT
};

enum {
	C_ASCII = 0, /* 00..7F */
	C_80_8F,
	C_90_9F,
	C_A0_BF,
	C_C2_DF,
	C_E0,
	C_E1_EF, /* E1..EC, EE..EF */
	C_ED,
	C_F0,
	C_F1_F3,
	C_F4,
	C_BAD, /* C0, C1, F5..FF */
	C_COUNT
};

static const uint8_t utf8_class[256] = {
    [0x00 ... 0x7f] = C_ASCII,
    [0x80 ... 0x8f] = C_80_8F,
    [0x90 ... 0x9f] = C_90_9F,
    [0xa0 ... 0xbf] = C_A0_BF,
    [0xc0 ... 0xc1] = C_BAD,
    [0xc2 ... 0xdf] = C_C2_DF,
    [0xe0] = C_E0,
    [0xe1 ... 0xec] = C_E1_EF,
    [0xed] = C_ED,
    [0xee ... 0xef] = C_E1_EF,
    [0xf0] = C_F0,
    [0xf1 ... 0xf3] = C_F1_F3,
    [0xf4] = C_F4,
    [0xf5 ... 0xff] = C_BAD,
};

#define R S_REJECT
static const uint8_t utf8_next[S_COUNT][C_COUNT] = {
    /* columns: the byte classes in enum order */
    [S_ACCEPT] = {S_ACCEPT, R, R, R, S_CONT1, S_E0, S_CONT2, S_ED, S_F0, S_CONT3, S_F4, R},
    [S_CONT1] = {R, S_ACCEPT, S_ACCEPT, S_ACCEPT, R, R, R, R, R, R, R, R},
    [S_CONT2] = {R, S_CONT1, S_CONT1, S_CONT1, R, R, R, R, R, R, R, R},
    [S_CONT3] = {R, S_CONT2, S_CONT2, S_CONT2, R, R, R, R, R, R, R, R},
    [S_E0] = {R, R, R, S_CONT1, R, R, R, R, R, R, R, R},
    [S_ED] = {R, S_CONT1, S_CONT1, R, R, R, R, R, R, R, R, R},
    [S_F0] = {R, R, S_CONT2, S_CONT2, R, R, R, R, R, R, R, R},
    [S_F4] = {R, S_CONT2, R, R, R, R, R, R, R, R, R, R},
    [S_REJECT] = {R, R, R, R, R, R, R, R, R, R, R, R},
};
#undef R

int base_utf8_validate(uint32_t *state, const unsigned char *s, size_t len)
{
	uint32_t st = *state;
	size_t i = 0;

	if (st >= S_REJECT) {
		*state = S_REJECT;
		return -1;
	}
	while (i < len) {
		/* Between characters, skip ASCII eight bytes at a time. */
		if (st == S_ACCEPT) {
			while (len - i >= 8) {
				uint64_t w;

				memcpy(&w, s + i, 8);
				if (w & 0x8080808080808080ull)
					break;
				i += 8;
			}
			while (i < len && s[i] < 0x80)
				i++;
			if (i == len)
				break;
		}
		st = utf8_next[st][utf8_class[s[i]]];
		if (st == S_REJECT) {
			*state = S_REJECT;
			return -1;
		}
		i++;
	}
	*state = st;
	return 0;
}
