#ifndef HAL_CORTEXM_H
#define HAL_CORTEXM_H
#include <stdint.h>
#define ES_CORTEXM_TX_RING 2048u /* UART TX ring, as in the host build */
void hal_cortexm_init(uint32_t baud);
/* Move queued TX bytes to the UART at the line rate; call every main-loop turn. */
void hal_cortexm_service(void);
#endif
